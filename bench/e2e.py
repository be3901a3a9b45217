"""``python -m bench.e2e``: kept as an alias of the open-loop benchmark (bench.openloop).

The closed-loop benchmark that lived here (200 messages one at a time, then a burst of
2,000 from 16 clients) is in git history; its results stay in results/e2e.jsonl.
"""

from bench.openloop import main

if __name__ == "__main__":
    main()
