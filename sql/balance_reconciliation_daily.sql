-- title: 일별 잔액 대사 / Daily balance reconciliation
-- description: 보유 카드의 일별 자금 이동(충전 − 승인 결제 + 환불), 그 이동으로 계산한 날짜별 잔액, 마지막 날에는 실제 보유 잔액과의 차이(맞으면 0). / Money moved per day (top-ups − approved payments + refunds) for the cards on file, the balance those movements imply at the end of each day, and on the last day the difference to the balances on file (0 when they agree).
-- param: period daterange default=last_30_days label="기간 / Period"
-- chart: bar x=day y=net_krw
-- totals: topups_krw, payments_krw, refunds_krw, net_krw
WITH moves AS (
    SELECT card_id, created_at, amount_krw AS topup, 0 AS payment, 0 AS refund FROM topups
    UNION ALL
    SELECT card_id, created_at, 0, amount_krw, 0 FROM payments WHERE status = 'approved'
    UNION ALL
    SELECT card_id, created_at, 0, 0, amount_krw FROM refunds
),
on_file AS (
    SELECT m.* FROM moves AS m WHERE m.card_id IN (SELECT card_id FROM cards)
),
daily AS (
    SELECT
        CAST(timezone('Asia/Seoul', created_at) AS DATE) AS day,
        sum(topup)   AS topups_krw,
        sum(payment) AS payments_krw,
        sum(refund)  AS refunds_krw
    FROM on_file
    GROUP BY ALL
),
days AS (
    SELECT CAST(d AS DATE) AS day
    FROM generate_series(CAST($period_start AS TIMESTAMP), CAST($period_end AS TIMESTAMP), INTERVAL 1 DAY) AS g(d)
    UNION
    SELECT day FROM daily WHERE day < $period_start
),
ledger AS (
    SELECT
        days.day,
        coalesce(daily.topups_krw, 0)   AS topups_krw,
        coalesce(daily.payments_krw, 0) AS payments_krw,
        coalesce(daily.refunds_krw, 0)  AS refunds_krw,
        sum(coalesce(daily.topups_krw, 0) - coalesce(daily.payments_krw, 0) + coalesce(daily.refunds_krw, 0))
            OVER (ORDER BY days.day)    AS movement_balance_krw
    FROM days
    LEFT JOIN daily USING (day)
),
balances AS (
    SELECT sum(balance_krw) AS balances_on_file_krw FROM cards
)
SELECT
    l.day,
    CAST(l.topups_krw AS BIGINT)                              AS topups_krw,
    CAST(l.payments_krw AS BIGINT)                            AS payments_krw,
    CAST(l.refunds_krw AS BIGINT)                             AS refunds_krw,
    CAST(l.topups_krw - l.payments_krw + l.refunds_krw AS BIGINT) AS net_krw,
    CAST(l.movement_balance_krw AS BIGINT)                    AS movement_balance_krw,
    CASE WHEN l.day = $period_end THEN CAST(b.balances_on_file_krw AS BIGINT) END AS balances_on_file_krw,
    CASE WHEN l.day = $period_end THEN CAST(b.balances_on_file_krw - l.movement_balance_krw AS BIGINT) END AS difference_krw
FROM ledger AS l
CROSS JOIN balances AS b
WHERE l.day >= $period_start
ORDER BY l.day
