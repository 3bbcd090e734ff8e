"""Modal screens: settings, confirmation, text prompts."""
