"""Building blocks shared by policies: normaliser, encoders, modality registry, balance (OGM/OPM)."""
