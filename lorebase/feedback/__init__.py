"""The feedback loop: ratings of answers (service), the review queue a person works through
(review), and thumbs-up answers that pass the support check turned into QA pairs (harvest); the
pairs both make, and how the citations shown with an answer are found again, are in pairs.

- A thumbs-down answer waits in the review queue. A reviewer rejects it, or accepts it with a
  correction: the answer the model should have given. The correction becomes a validated pair.
- A thumbs-up answer becomes a pair only if it was not shown as unverified (the Verdict stored with
  the rating) and the grounding check finds it supported by the sources it cites; otherwise it is
  marked rejected, with the reason.

The outcome is kept on the feedback row (``review_status``, ``reviewed_at``, ``review``), so nothing
is reviewed or harvested twice.
"""
