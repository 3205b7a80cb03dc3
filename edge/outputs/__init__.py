"""What a user asked to see or keep: annotated frames (preview, saved video and images) and the CSV export."""
