-- title: 가맹점별 환불·취소율 / Refund and cancellation rates by merchant
-- description: 기간 안 결제 중 환불된 비율(승인 금액 중 그 결제의 환불액, 환불 시점 무관)과 취소된 비율(건수). 고른 비율이 높은 순으로 상위 N곳. / Of the payments made in the period: share of the approved amount refunded (refunds of those payments, whenever they happened) and share cancelled (by count). The top N merchants by the chosen rate.
-- param: period daterange default=last_30_days label="기간 / Period"
-- param: rank_by choice options=refund_rate,cancel_rate default=refund_rate required=true label="순위 기준 / Rank by"
-- param: top number default=20 min=1 label="상위 N곳 / Top N"
-- param: min_payments number default=5 min=1 label="최소 결제 건수 / Minimum payments"
-- chart: bar x=merchant_name y=refund_rate_pct
-- totals: payments, cancelled, approved_krw, refunded_krw
WITH p AS (
    SELECT payment_id, merchant_id, status, amount_krw
    FROM payments
    WHERE timezone('Asia/Seoul', created_at) >= $period_start
      AND timezone('Asia/Seoul', created_at) < $period_end + INTERVAL 1 DAY
),
r AS (
    SELECT payment_id, sum(amount_krw) AS refunded_krw
    FROM refunds
    GROUP BY payment_id
),
per_merchant AS (
    SELECT
        p.merchant_id,
        count(*)                                                         AS payments,
        count(*) FILTER (WHERE p.status = 'cancelled')                   AS cancelled,
        coalesce(sum(p.amount_krw) FILTER (WHERE p.status = 'approved'), 0) AS approved_krw,
        coalesce(sum(r.refunded_krw) FILTER (WHERE p.status = 'approved'), 0) AS refunded_krw,
        count(r.payment_id) FILTER (WHERE p.status = 'approved')         AS refunded_payments
    FROM p
    LEFT JOIN r USING (payment_id)
    GROUP BY p.merchant_id
)
SELECT
    x.merchant_id,
    m.merchant_name,
    m.category,
    x.payments,
    x.cancelled,
    round(100.0 * x.cancelled / x.payments, 1)                      AS cancel_rate_pct,
    CAST(x.approved_krw AS BIGINT)                                  AS approved_krw,
    CAST(x.refunded_krw AS BIGINT)                                  AS refunded_krw,
    x.refunded_payments,
    round(100.0 * x.refunded_krw / nullif(x.approved_krw, 0), 1)    AS refund_rate_pct
FROM per_merchant AS x
JOIN merchants AS m USING (merchant_id)
WHERE x.payments >= $min_payments
-- Rank by the rate the reader picked; the other rate breaks ties.
QUALIFY row_number() OVER (
    ORDER BY CASE WHEN $rank_by = 'cancel_rate' THEN cancel_rate_pct ELSE refund_rate_pct END DESC NULLS LAST,
             CASE WHEN $rank_by = 'cancel_rate' THEN refund_rate_pct ELSE cancel_rate_pct END DESC NULLS LAST,
             x.merchant_id
) <= $top
ORDER BY CASE WHEN $rank_by = 'cancel_rate' THEN cancel_rate_pct ELSE refund_rate_pct END DESC NULLS LAST,
         CASE WHEN $rank_by = 'cancel_rate' THEN refund_rate_pct ELSE cancel_rate_pct END DESC NULLS LAST,
         x.merchant_id
