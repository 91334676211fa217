"""Speech in (Vosk), catalog-driven bilingual understanding, dialogue management and speech out (espeak-ng)."""
