"""Fine-tuning: QA-pair datasets and LoRA training."""
