"""HTTP conventions every router follows: problems, request ids, one transaction per request."""
