#!/usr/bin/env python3
"""Write an opportunity CSV of about SIZE megabytes for memory tests of the
file source (rows shaped like `autonomos bench`'s: the canonical columns, a
version and 16 unmapped CRM columns that land in extras).

    scripts/gencsv.py 1024 > /tmp/opps.csv
    autonomos ingest --entity opportunity --token ... /tmp/opps.csv
"""
import csv
import sys
from datetime import date, datetime, timedelta, timezone

STAGES = ["Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Proposal/Price Quote",
          "Negotiation/Review", "Closed Won", "Closed Lost"]
SOURCES = ["Web", "Partner Referral", "Trade Show", "Outbound", "Customer Event", "Inbound Call"]
REGIONS = ["EMEA", "NA-East", "NA-West", "APAC", "LATAM"]
SEGMENTS = ["Enterprise", "Mid-Market", "SMB", "Public Sector"]
FORECAST = ["Pipeline", "Best Case", "Commit", "Closed", "Omitted"]
TYPES = ["New Business", "Existing Customer - Upgrade", "Existing Customer - Renewal", "Existing Customer - Downgrade"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CAD"]
PRODUCTS = ["analytics suite", "integration platform", "premium support", "data residency add-on", "sandbox seats", "audit module"]
HEADER = ["opportunity_id", "account_id", "name", "stage", "amount", "currency", "close_date", "owner_id", "probability",
          "updated_at", "description", "lead_source", "forecast_category", "type", "campaign_id", "is_private",
          "total_quantity", "expected_revenue", "last_activity_date", "pricebook_id", "synced_quote_id", "region",
          "segment", "territory", "competitor", "fiscal_quarter"]


def main():
    limit = int(sys.argv[1]) << 20 if len(sys.argv) > 1 else 1 << 30
    at = datetime(2025, 1, 1, tzinfo=timezone.utc)
    day = date(2025, 1, 1)
    out = sys.stdout
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    written, i = 0, 0
    while written < limit:
        amount = 5000 + (i * 7919) % 995000
        prob = (i * 13) % 101
        row = [f"006GEN{i:012d}", f"001GEN{i % 20000:010d}",
               f"{SEGMENTS[i % 4]} — {PRODUCTS[i % len(PRODUCTS)]}, {10 + i % 490} seats",
               STAGES[i % len(STAGES)], f"{amount}.{i % 100:02d}", CURRENCIES[i % len(CURRENCIES)],
               (day + timedelta(days=i % 365)).isoformat(), f"005GEN{i % 977:08d}", str(prob),
               (at + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               f"Evaluating the {PRODUCTS[(i // 7) % len(PRODUCTS)]} against a competing offer; "
               f"procurement wants a {3 + i % 12}% multi-year discount.",
               SOURCES[i % len(SOURCES)], FORECAST[i % len(FORECAST)], TYPES[i % len(TYPES)], f"701GEN{i % 211:08d}",
               "true" if i % 17 == 0 else "false", str(1 + i % 250), f"{amount * prob // 100}.{i % 100:02d}",
               (day - timedelta(days=i % 90)).isoformat(), "01sGEN000000AAAAAA", f"0Q0GEN{i:08d}",
               REGIONS[i % len(REGIONS)], SEGMENTS[(i // 3) % 4], f"TERR-{i % 173:03d}", "Globex Corporation",
               f"FY{2024 + i % 2}-Q{1 + i % 4}"]
        line = ",".join(f'"{v}"' if ("," in v or '"' in v) else v for v in row) + "\n"
        out.write(line)
        written += len(line.encode())
        i += 1


if __name__ == "__main__":
    main()
