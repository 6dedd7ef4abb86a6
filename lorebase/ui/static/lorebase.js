// lorebase's additions to the chat page (Chainlit loads this file with the page).
// A citation chip in an answer is a link to the source viewer; a plain click opens the matching
// source card of the same answer instead (a modified click still opens the viewer).
(() => {
  const CHIP = '.message-content .prose a[href^="/sources/"]';

  function openCard(card) {
    card.open = true;
    for (const other of document.querySelectorAll('.lb-card.lb-active')) other.classList.remove('lb-active');
    // restart the highlight even when the same card is asked for twice
    void card.offsetWidth;
    card.classList.add('lb-active');
    card.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    const summary = card.querySelector('summary');
    if (summary) summary.focus({ preventScroll: true });
  }

  document.addEventListener('click', (ev) => {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const chip = ev.target instanceof Element ? ev.target.closest(CHIP) : null;
    if (!chip) return;
    const label = new URL(chip.href, window.location.href).searchParams.get('cite') || chip.textContent.trim();
    const answer = chip.closest('[data-step-type]');
    const card = answer && answer.querySelector(`.lb-card[data-cite="${CSS.escape(label)}"]`);
    if (!card) return; // no card (yet): follow the link to the viewer
    ev.preventDefault();
    openCard(card);
  });
})();
