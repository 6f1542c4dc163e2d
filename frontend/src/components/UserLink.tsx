import { Link } from 'react-router'

type Person = { id: string; handle: string; displayName: string } | null | undefined

/** A person named the same way everywhere (display name, else handle), linking to their profile. */
export function UserLink({ user }: { user: Person }) {
  if (!user) return <>[deleted]</>
  return <Link to={`/users/${user.id}`}>{user.displayName || user.handle}</Link>
}
