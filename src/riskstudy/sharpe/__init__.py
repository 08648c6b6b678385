"""Sharpe-ratio section (issue 13): networks trained on negative Sharpe, the covariance-prediction network, backtests."""
