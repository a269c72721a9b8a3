"""Shopping guides (导购): customer binding, share links, attribution, commission, tasks, recommendations."""
