"""Pictures: one description of a decision-plane picture, drawn by matplotlib (plots) or Pillow (quicklook)."""
