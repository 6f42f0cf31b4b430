"""The reviewers' side: the review API and its authentication."""
