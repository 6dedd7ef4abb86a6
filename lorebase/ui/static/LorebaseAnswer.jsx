// The structured part of a lorebase answer, rendered by Chainlit under the answer's text: the
// progress while it is being made, then the answer's sources as cards, and its grounding check.
// It is data (props), never Markdown, so nothing the model writes can swallow it. Chips in the
// answer text open these cards (see lorebase.js). Written by lorebase into the UI folder at each start.
import { useEffect } from 'react';

function chatRoot() {
  const meta = document.querySelector('meta[property="og:root_path"]');
  return ((meta && meta.getAttribute('content')) || '').replace(/\/+$/, '');
}

// Chainlit puts a new conversation's id in the address only when it is served at "/"; lorebase
// serves it at /chat, so the answer does it: a reload or a shared link reopens the conversation.
function useThreadAddress(threadId) {
  useEffect(() => {
    if (!threadId) return;
    const root = chatRoot();
    const here = window.location.pathname.replace(/\/+$/, '');
    if (here === root) {
      window.history.replaceState(window.history.state, '', `${root}/thread/${threadId}`);
    }
  }, [threadId]);
}

function Excerpt({ card }) {
  if (!card.excerpt) return null;
  if (card.code) {
    const first = card.first_line;
    const lines = card.excerpt.split('\n');
    return (
      <pre className="lb-excerpt lb-code">
        {card.cut_before ? <div className="lb-cut">…</div> : null}
        {lines.map((line, i) => (
          <div key={i} className="lb-line">
            {first ? <span className="lb-ln">{first + i}</span> : null}
            <span>{line || ' '}</span>
          </div>
        ))}
        {card.cut_after ? <div className="lb-cut">…</div> : null}
      </pre>
    );
  }
  return (
    <p className="lb-excerpt">
      {card.cut_before ? '… ' : ''}
      {card.excerpt}
      {card.cut_after ? ' …' : ''}
    </p>
  );
}

function Supports({ items, title, warn }) {
  if (!items.length) return null;
  return (
    <div className={warn ? 'lb-supports lb-supports-weak' : 'lb-supports'}>
      <div className="lb-supports-title">{title}</div>
      <ul>
        {items.map((s, i) => (
          <li key={i}>{s.text}</li>
        ))}
      </ul>
    </div>
  );
}

function Card({ card }) {
  return (
    <details className={card.cited === false ? 'lb-card lb-uncited' : 'lb-card'} data-cite={card.id}>
      <summary>
        <span className="lb-card-id">{card.id}</span>
        <span className="lb-kind">{card.kind_name}</span>
        <a className="lb-card-label" href={card.viewer} target="_blank" rel="noopener">
          {card.label}
        </a>
        {card.cited === false ? <span className="lb-not-cited">not cited</span> : null}
        {card.web ? (
          <a className="lb-web" href={card.web} target="_blank" rel="noopener noreferrer">
            {card.web_name} ↗
          </a>
        ) : null}
      </summary>
      <div className="lb-card-body">
        {card.where ? <div className="lb-where">{card.where}</div> : null}
        <Supports items={(card.supports || []).filter((s) => s.supported)} title="Supports in the answer:" />
        <Supports
          items={(card.supports || []).filter((s) => !s.supported)}
          title="Cited for, but the check did not find it here:"
          warn
        />
        <Excerpt card={card} />
        <a className="lb-open" href={card.viewer} target="_blank" rel="noopener">
          Open {card.label} in the source viewer
        </a>
      </div>
    </details>
  );
}

export default function LorebaseAnswer() {
  const p = typeof props === 'string' ? JSON.parse(props) : props || {};
  useThreadAddress(p.thread_id);
  const working = p.status === 'working';
  const sources = p.sources || [];
  const steps = p.steps || [];
  return (
    <div className="lb-answer" data-status={p.status || 'done'}>
      {working && p.progress ? (
        <ol className="lb-steps" aria-live="polite">
          {steps.map((s, i) => (
            <li key={i} className="lb-step-done">
              {s}
            </li>
          ))}
          <li className="lb-step-now">
            <span className="lb-spinner" aria-hidden="true"></span>
            {p.progress}
          </li>
        </ol>
      ) : null}
      {p.note ? <div className={`lb-note lb-note-${p.status}`}>{p.note}</div> : null}
      {p.check && p.check.text ? <div className={`lb-check lb-check-${p.check.state}`}>{p.check.text}</div> : null}
      {sources.length ? (
        <section className="lb-sources" aria-label="Sources">
          <div className="lb-sources-title">
            {p.sources_title || 'Sources'} <span className="lb-count">{sources.length}</span>
          </div>
          {sources.map((c) => (
            <Card key={c.id} card={c} />
          ))}
        </section>
      ) : null}
    </div>
  );
}
