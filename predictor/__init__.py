"""Graph-network performance predictor fitted to noisy subnet accuracies."""
