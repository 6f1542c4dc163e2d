/**
 * Renders HTML that the API already sanitised (`notesHtml`, `bodyHtml`). Never pass Markdown
 * or any user text here: only fields the API documents as sanitised HTML.
 */
export function HtmlContent({ html, empty = 'Nothing written yet.' }: { html: string; empty?: string }) {
  if (!html.trim()) return <p className="muted">{empty}</p>
  return <div className="prose" dangerouslySetInnerHTML={{ __html: html }} />
}
