package results

import (
	"math"
	"slices"
)

// exactMWULimit is the largest pooled sample for which MannWhitneyP computes the exact
// distribution; above it the normal approximation is within a few thousandths of it.
const exactMWULimit = 60

// MannWhitneyP returns the two-sided p-value of the Mann–Whitney U test (the Wilcoxon
// rank-sum test) of the hypothesis that x and y come from the same distribution: the chance
// of a rank sum at least as far from its mean as the observed one. Tied values share their
// mid-rank. Up to 60 values in all it is exact: the permutation distribution of the rank sum
// given the observed ranks, so ties are handled exactly too. Above that it uses the normal
// approximation with tie and continuity corrections. It returns 1 when either sample is
// empty (nothing can be told apart).
func MannWhitneyP(x, y []float64) float64 {
	nx, ny := len(x), len(y)
	if nx == 0 || ny == 0 {
		return 1
	}
	ranks, ties := doubledRanks(x, y)
	n := nx + ny
	// Work in doubled ranks so mid-ranks (k + ½) stay integers and comparisons are exact.
	obs := 0
	for _, r := range ranks[:nx] {
		obs += r
	}
	mean := nx * (n + 1) // doubled: 2 · nx(n+1)/2
	if n > exactMWULimit {
		return mwuNormalP(nx, ny, obs, ties)
	}
	return mwuExactP(ranks, nx, abs(obs-mean), mean)
}

// doubledRanks returns twice the mid-rank of every value of x then y (in that order) in the
// pooled sample, and the sizes of the groups of tied values.
func doubledRanks(x, y []float64) ([]int, []int) {
	type item struct {
		v   float64
		pos int
	}
	items := make([]item, 0, len(x)+len(y))
	for i, v := range x {
		items = append(items, item{v, i})
	}
	for i, v := range y {
		items = append(items, item{v, len(x) + i})
	}
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	ranks := make([]int, len(items))
	var ties []int
	for i := 0; i < len(items); {
		j := i + 1
		for j < len(items) && items[j].v == items[i].v {
			j++
		}
		// Positions i..j-1 hold ranks i+1..j; their mid-rank doubled is i+1+j.
		for k := i; k < j; k++ {
			ranks[items[k].pos] = i + 1 + j
		}
		ties = append(ties, j-i)
		i = j
	}
	return ranks, ties
}

// mwuExactP counts, over every way of choosing nx of the pooled (doubled) ranks, the
// choices whose sum is at least dist from mean, by dynamic programming over the sums.
func mwuExactP(ranks []int, nx, dist, mean int) float64 {
	maxSum := 0
	for _, r := range ranks {
		maxSum += r
	}
	// ways[k][s]: number of k-subsets of the ranks seen so far with sum s. float64 keeps
	// the counts exact up to 2^53 (C(60,30) is about 1.2e17: relative error ~1e-16 there).
	ways := make([][]float64, nx+1)
	for k := range ways {
		ways[k] = make([]float64, maxSum+1)
	}
	ways[0][0] = 1
	for i, r := range ranks {
		for k := min(i+1, nx); k >= 1; k-- {
			prev, cur := ways[k-1], ways[k]
			for s := maxSum; s >= r; s-- {
				cur[s] += prev[s-r]
			}
		}
	}
	var tail, total float64
	for s, w := range ways[nx] {
		total += w
		if abs(s-mean) >= dist {
			tail += w
		}
	}
	return min(1, tail/total)
}

// mwuNormalP is the normal approximation for large samples.
func mwuNormalP(nx, ny, obsDoubled int, ties []int) float64 {
	n := float64(nx + ny)
	u := float64(obsDoubled)/2 - float64(nx*(nx+1))/2
	mu := float64(nx*ny) / 2
	tieSum := 0.0
	for _, t := range ties {
		tf := float64(t)
		tieSum += tf*tf*tf - tf
	}
	variance := float64(nx*ny) / 12 * ((n + 1) - tieSum/(n*(n-1)))
	if variance <= 0 {
		return 1 // every value equal
	}
	z := (math.Abs(u-mu) - 0.5) / math.Sqrt(variance)
	if z <= 0 {
		return 1
	}
	return math.Erfc(z / math.Sqrt2)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
