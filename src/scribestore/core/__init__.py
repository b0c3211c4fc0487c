"""What Repository, Experiment and Project share: storing and loading artifact values."""
