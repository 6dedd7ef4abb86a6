"""Generation: prompts, generator backends, grounded answers and summaries."""
