"""The model host: where the model runs for the chat and `r1chat serve` alike."""
