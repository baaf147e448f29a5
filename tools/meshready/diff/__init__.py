"""`meshready diff`: rendered objects compared per resource between two revisions
(docs/diff.md).

- `core`: pure: resource keys, noise stripping, Secret masking, unified diffs
- `output`: diff, markdown (a pull-request comment) and json formats
The base revision's checkout comes from `meshready.git`, the one git wrapper.
"""

from meshready.diff.core import DiffReport, StripRules, diff_renders

__all__ = ["DiffReport", "StripRules", "diff_renders"]
