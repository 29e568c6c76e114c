"""The encoders emotionlib fine-tunes or reads features from, one module each where it must be found, installed
or verified in its own way (EmbeddingGemma: `encoders.gemma`)."""
