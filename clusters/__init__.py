"""The clusters app: directors, virtual services, real servers, and what happens to them."""
