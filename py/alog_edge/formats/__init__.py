"""The file formats Python and the C runtime share, one module each: log formats, vocab.json, parser.json,
drain_state.json, checkpoints, the model directory (and the device's rules for it)."""
