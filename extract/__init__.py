"""HTTP only: the async client for the Conversations API, its errors, stream events and pager."""
