"""Text-to-image: HfGAN (thesis ch. 3) and the stacked AttnGAN-style baseline, on a frozen DAMSM."""
