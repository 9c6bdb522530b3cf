"""The decoder as a thinc model: loading (loading, lora), word pieces aligned to spaCy
tokens (alignment), the masked forward pass (encoder), the optimizer step
(optimizer) and save/load (serialization), put together in model."""
