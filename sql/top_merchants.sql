-- title: 매출 상위 가맹점 / Top merchants by amount
-- description: 기간 안 승인 결제 금액 순위의 가맹점과 같은 기간의 환불. / Merchants ranked by approved payment amount in the period, with the refunds they made in the same period.
-- param: period daterange default=last_30_days label="기간 / Period"
-- param: category choice label="업종 / Category" from=SELECT DISTINCT category FROM merchants
-- param: name_contains text label="가맹점명 포함 / Name contains"
-- param: top_n number default=20 min=1 max=1000 label="상위 N / Top N"
-- chart: bar x=merchant_name y=amount_krw
-- totals: payments, amount_krw, refunds_krw, net_krw
WITH paid AS (
    SELECT merchant_id, count(*) AS payments, sum(amount_krw) AS amount_krw
    FROM payments
    WHERE status = 'approved'
      AND timezone('Asia/Seoul', created_at) >= $period_start
      AND timezone('Asia/Seoul', created_at) < $period_end + INTERVAL 1 DAY
    GROUP BY merchant_id
),
refunded AS (
    SELECT merchant_id, sum(amount_krw) AS refunds_krw
    FROM refunds
    WHERE timezone('Asia/Seoul', created_at) >= $period_start
      AND timezone('Asia/Seoul', created_at) < $period_end + INTERVAL 1 DAY
    GROUP BY merchant_id
)
SELECT
    rank() OVER (ORDER BY p.amount_krw DESC)                    AS rank,
    m.merchant_id,
    m.merchant_name,
    m.category,
    m.region,
    p.payments,
    CAST(p.amount_krw AS BIGINT)                                AS amount_krw,
    CAST(coalesce(r.refunds_krw, 0) AS BIGINT)                  AS refunds_krw,
    CAST(p.amount_krw - coalesce(r.refunds_krw, 0) AS BIGINT)   AS net_krw
FROM paid AS p
JOIN merchants AS m USING (merchant_id)
LEFT JOIN refunded AS r USING (merchant_id)
WHERE ($category IS NULL OR m.category = $category)
  AND ($name_contains IS NULL OR m.merchant_name ILIKE '%' || $name_contains || '%')
QUALIFY rank <= $top_n
ORDER BY rank, m.merchant_id
