-- Every charge credits revenue, and crediting an account updates (so locks) its row: with
-- one revenue account every charge in the system queued on that row, whoever paid. Charges
-- now credit one of 16 revenue accounts, chosen by a hash of the job id
-- (rules.revenue_account), so unrelated charges rarely meet. Revenue is the sum of all
-- `system:revenue*` accounts; `system:revenue` itself keeps the charges made before.
INSERT INTO accounts (id, kind, name, restricted)
SELECT 'system:revenue:' || lpad(i::text, 2, '0'), 'system', 'revenue:' || lpad(i::text, 2, '0'),
       false
  FROM generate_series(0, 15) AS i;
