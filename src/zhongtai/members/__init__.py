"""Members: one person across every touchpoint — identities, profile, consent, PII, merge."""
