"""The encoders emotionlib fine-tunes or reads features from, one module each where it must be found, installed
or verified in its own way (EmbeddingGemma: `encoders.gemma`)."""
from emotionlib.encoders import gemma

PROMPTS = {gemma.NAME: gemma.PROMPT, gemma.TINY: gemma.PROMPT}  # put before every text the encoder reads


def prompt_for(name: str) -> str:
    """The task prefix an encoder was trained to read before a text for classification (empty for most)."""
    return PROMPTS.get(name, "")
