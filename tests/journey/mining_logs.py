"""Logs the mining tests share."""

#: Three cases, rows out of order, times in three spellings: Z, an offset, and naive (UTC).
#: c1: open 09:00, triage 09:10, bill 10:10, close 10:30 (all UTC)
#: c2: open 08:00 (09:00+01:00), bill 08:30, bill 09:30, close 10:00 (naive)
#: c3: open 00:00, triage 00:20, bill 01:20, close 01:40 (the next day)
HAND_LOG = """case_id,activity,timestamp,team,channel
c2,bill,2024-01-01T09:30:00Z,billing,email
c1,open,2024-01-01T09:00:00Z,front,phone
c3,close,2024-01-02T01:40:00Z,front,phone
c2,open,2024-01-01T09:00:00+01:00,front,chat
c1,bill,2024-01-01T10:10:00Z,billing,email
c3,open,2024-01-02T00:00:00Z,front,phone
c1,triage,2024-01-01T09:10:00Z,front,phone
c2,bill,2024-01-01T08:30:00Z,billing,chat
c3,triage,2024-01-02T00:20:00Z,front,phone
c1,close,2024-01-01T10:30:00Z,front,email
c2,close,2024-01-01 10:00:00,front,email
c3,bill,2024-01-02T01:20:00Z,billing,phone
"""
