//! Tasks: to-dos with a due time, an optional reminder and an assignee.
