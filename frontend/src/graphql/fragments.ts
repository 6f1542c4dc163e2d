import { graphql } from '../gql'

/** A run as the cards of Explore and Discover show it (codegen inlines it into their queries). */
graphql(`
  fragment RunSummary on Run {
    id
    title
    status
    createdAt
    fundedCents
    fundingGapCents
    estimatedCostCents
  }
`)
