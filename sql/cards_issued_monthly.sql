-- title: 월별 상품별 카드 발급 / Cards issued per month by product
-- description: 보유 카드를 발급 월(한국 시간)과 상품별로 셉니다. 원본에서 해지·삭제된 카드는 빠집니다. / Cards on file by the month (Asia/Seoul) they were issued and their product. Cards closed and removed at the source are not counted.
-- param: period daterange default=last_365_days label="발급 기간 / Issued between"
-- param: product choice options=standard,transit,gift,youth label="상품 / Product"
-- chart: bar x=month y=cards color=product
-- totals: cards
SELECT
    CAST(date_trunc('month', timezone('Asia/Seoul', issued_at)) AS DATE) AS month,
    product,
    count(*) AS cards
FROM cards
WHERE timezone('Asia/Seoul', issued_at) >= $period_start
  AND timezone('Asia/Seoul', issued_at) < $period_end + INTERVAL 1 DAY
  AND ($product IS NULL OR product = $product)
GROUP BY ALL
ORDER BY month, product
