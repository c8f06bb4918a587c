-- title: 요일·시간대별 결제 / Payments by weekday and hour
-- description: 요일·시간대(한국 시간)별 승인 결제 건수. 결제가 없는 칸은 0으로 보입니다. / Approved payments per weekday and hour of day (Asia/Seoul), every cell shown, zero where there were none.
-- param: period daterange default=last_28_days label="기간 / Period"
-- chart: heatmap x=hour y=weekday z=payments
-- totals: payments, amount_krw
WITH p AS (
    SELECT timezone('Asia/Seoul', created_at) AS local_ts, amount_krw
    FROM payments
    WHERE status = 'approved'
      AND timezone('Asia/Seoul', created_at) >= $period_start
      AND timezone('Asia/Seoul', created_at) < $period_end + INTERVAL 1 DAY
),
counted AS (
    SELECT isodow(local_ts) AS weekday_no, hour(local_ts) AS hour, count(*) AS payments, sum(amount_krw) AS amount_krw
    FROM p
    GROUP BY ALL
)
SELECT
    d.weekday_no,
    ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][d.weekday_no] AS weekday,
    h.hour,
    coalesce(c.payments, 0)                    AS payments,
    CAST(coalesce(c.amount_krw, 0) AS BIGINT)  AS amount_krw
FROM (SELECT range AS weekday_no FROM range(1, 8)) AS d
CROSS JOIN (SELECT range AS hour FROM range(0, 24)) AS h
LEFT JOIN counted AS c ON c.weekday_no = d.weekday_no AND c.hour = h.hour
ORDER BY d.weekday_no, h.hour
