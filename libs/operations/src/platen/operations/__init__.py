"""Operations: what a service tells its operators (metrics, health) and how it prunes."""
