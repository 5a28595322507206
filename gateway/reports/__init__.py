"""Reports: the monthly energy-saving report and the daily safety and canteen records.

Each report is computed as data (a pydantic model: the JSON format), then laid out as a
`Document` in the reader's language, which `render` turns into HTML, PDF or CSV."""
