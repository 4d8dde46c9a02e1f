"""What a run and a sweep leave to look at: TensorBoard events, hparams, the sweep summary."""
