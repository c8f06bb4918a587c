-- title: 주별 활성 카드 / Active cards per week
-- description: 주(월~일, 한국 시간)마다: 그 주 마지막 날까지 30일 안에 승인 결제가 한 번이라도 있었던 카드 수와, 그 주에 쓰인 카드 수. / Per week (Monday to Sunday, Asia/Seoul): cards with at least one approved payment in the 30 days up to the end of that week, and cards used within the week itself.
-- param: period daterange default=last_90_days label="기간 / Period"
-- chart: line x=week y=active_30d
WITH weeks AS (
    SELECT CAST(w AS DATE) AS week
    FROM generate_series(
        CAST(date_trunc('week', $period_start) AS TIMESTAMP),
        CAST(date_trunc('week', $period_end) AS TIMESTAMP),
        INTERVAL 7 DAY
    ) AS g(w)
),
uses AS (
    SELECT card_id, timezone('Asia/Seoul', created_at) AS local_ts
    FROM payments
    WHERE status = 'approved'
)
SELECT
    w.week,
    count(DISTINCT u.card_id)                                   AS active_30d,
    count(DISTINCT u.card_id) FILTER (WHERE u.local_ts >= w.week) AS used_in_week
FROM weeks AS w
LEFT JOIN uses AS u
       ON u.local_ts >= w.week + 7 - 30
      AND u.local_ts <  w.week + 7
GROUP BY w.week
ORDER BY w.week
