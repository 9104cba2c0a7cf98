"""Speech recognisers behind one ``SpeechVerifier`` protocol (Whisper, vosk)."""

from liveness.inference.speech.base import Hearing, SpeechResult, SpeechVerifier

__all__ = ["Hearing", "SpeechResult", "SpeechVerifier"]
