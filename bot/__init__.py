"""A 24/7 AI auto-responder for brands' social-media customer service."""
