CREATE TABLE printers (
    name text PRIMARY KEY,
    price_per_page numeric(12, 4) NOT NULL CHECK (price_per_page >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
