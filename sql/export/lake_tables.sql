-- The lake's entries, messages and content_chunks as the views read them: the lake keeps only
-- raw, so text and content are derived here, as the local warehouse's generated columns do
-- (sql/export/schema.sql). lake_* are the tables' last committed Delta versions.
CREATE MACRO message_text(raw) AS
    CASE json_type(raw, '$.content')
        WHEN 'VARCHAR' THEN json_extract_string(raw, '$.content')
        WHEN 'ARRAY' THEN array_to_string(json_extract_string(raw, '$.content[*].text'), '')
    END;
CREATE MACRO message_content(raw) AS
    CASE WHEN json_type(raw, '$.content') <> 'NULL' THEN json_extract(raw, '$.content') END;

CREATE VIEW entries AS
SELECT *, message_text(raw) AS text, message_content(raw) AS content FROM lake_entries;
CREATE VIEW messages AS
SELECT *, message_text(raw) AS text, message_content(raw) AS content FROM lake_messages;
CREATE VIEW content_chunks AS
SELECT *,
       CASE WHEN json_extract_string(raw, '$.type') = 'thinking'
            THEN array_to_string(json_extract_string(raw, '$.thinking[*].text'), '')
            ELSE json_extract_string(raw, '$.text') END AS text
FROM lake_content_chunks;
