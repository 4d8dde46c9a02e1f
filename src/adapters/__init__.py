"""Low-rank adapters (LoRA, DoRA) through peft: which modules they wrap, the wrapped model's
parameters as the param groups see them, and the adapters merged back for an export."""
