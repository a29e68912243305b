"""Where the images come from (TFDS, a folder, generated), and the batches every trial sees."""
