"""Products, SKUs, barcodes, the category tree and prices per channel and store."""
