-- title: 업종·지역별 결제 / Payments by merchant category and region
-- description: 업종·지역별 승인 결제(취소 제외) 건수와 금액. / Approved payments (cancellations excluded) per merchant category and region.
-- param: period daterange default=last_30_days label="기간 / Period"
-- param: category choice label="업종 / Category" from=SELECT DISTINCT category FROM merchants
-- chart: bar x=region y=amount_krw color=category
-- totals: payments, amount_krw
SELECT
    m.category,
    m.region,
    count(*)                                 AS payments,
    CAST(sum(p.amount_krw) AS BIGINT)        AS amount_krw,
    CAST(round(avg(p.amount_krw)) AS BIGINT) AS avg_ticket_krw
FROM payments AS p
JOIN merchants AS m USING (merchant_id)
WHERE p.status = 'approved'
  AND timezone('Asia/Seoul', p.created_at) >= $period_start
  AND timezone('Asia/Seoul', p.created_at) < $period_end + INTERVAL 1 DAY
  AND ($category IS NULL OR m.category = $category)
GROUP BY ALL
ORDER BY amount_krw DESC, category, region
