-- title: 신규·재방문 카드 / New vs returning cards
-- description: 일·주·월(한국 시간)마다 승인 결제가 있었던 카드: 첫 승인 결제가 그 기간이면 신규, 아니면 재방문. / Cards with an approved payment in each day, week or month (Asia/Seoul): new when their first-ever approved payment falls in that bucket, returning otherwise.
-- param: period daterange default=last_90_days label="기간 / Period"
-- param: grain choice options=day,week,month default=week required=true label="단위 / Grain"
-- chart: bar x=bucket y=cards color=segment
WITH uses AS (
    SELECT card_id, timezone('Asia/Seoul', created_at) AS local_ts
    FROM payments
    WHERE status = 'approved'
),
firsts AS (
    SELECT card_id, min(local_ts) AS first_ts
    FROM uses
    GROUP BY card_id
),
per_bucket AS (
    SELECT DISTINCT CAST(date_trunc($grain, u.local_ts) AS DATE) AS bucket, u.card_id,
           CAST(date_trunc($grain, f.first_ts) AS DATE) AS first_bucket
    FROM uses AS u
    JOIN firsts AS f USING (card_id)
    WHERE u.local_ts >= $period_start
      AND u.local_ts < $period_end + INTERVAL 1 DAY
)
SELECT
    bucket,
    CASE WHEN first_bucket = bucket THEN 'new' ELSE 'returning' END AS segment,
    count(*) AS cards
FROM per_bucket
GROUP BY ALL
ORDER BY bucket, segment
