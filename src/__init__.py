"""groupwise: Hydra-configured fine-tuning with regex param groups and filtered pretrained loading."""
