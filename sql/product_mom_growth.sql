-- title: 상품별 전월 대비 결제 성장 / Month-over-month growth by product
-- description: 카드 상품별 월(한국 시간) 승인 결제 금액과 전월 대비 증감. 기간에 걸친 달은 한 달 전체를 셉니다. / Approved payment amount per calendar month (Asia/Seoul) and card product, against the month before. Whole months that touch the period are shown.
-- param: period daterange default=last_180_days label="기간 / Period"
-- chart: line x=month y=amount_krw color=product
-- totals: payments, amount_krw
WITH months AS (
    SELECT CAST(m AS DATE) AS month
    FROM generate_series(
        CAST(date_trunc('month', $period_start) AS TIMESTAMP) - INTERVAL 1 MONTH,
        CAST(date_trunc('month', $period_end) AS TIMESTAMP),
        INTERVAL 1 MONTH
    ) AS g(m)
),
products AS (
    SELECT DISTINCT product FROM cards
),
sales AS (
    SELECT
        CAST(date_trunc('month', timezone('Asia/Seoul', p.created_at)) AS DATE) AS month,
        c.product,
        count(*)          AS payments,
        sum(p.amount_krw) AS amount_krw
    FROM payments AS p
    JOIN cards AS c USING (card_id)
    WHERE p.status = 'approved'
    GROUP BY ALL
),
grid AS (
    SELECT
        months.month,
        products.product,
        coalesce(s.payments, 0)   AS payments,
        coalesce(s.amount_krw, 0) AS amount_krw,
        lag(coalesce(s.amount_krw, 0)) OVER (PARTITION BY products.product ORDER BY months.month) AS prev_amount_krw
    FROM months
    CROSS JOIN products
    LEFT JOIN sales AS s ON s.month = months.month AND s.product = products.product
)
SELECT
    month,
    product,
    payments,
    CAST(amount_krw AS BIGINT)                                               AS amount_krw,
    CAST(prev_amount_krw AS BIGINT)                                          AS prev_amount_krw,
    round(100.0 * (amount_krw - prev_amount_krw) / nullif(prev_amount_krw, 0), 1) AS growth_pct
FROM grid
WHERE month >= date_trunc('month', $period_start)
ORDER BY month, product
