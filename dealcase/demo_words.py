"""Word lists for the demo company: invented names and short texts.

Every name here is made up from common words; none is meant to name a real
company or person.
"""

from __future__ import annotations

ACCOUNT_FIRST = (
    "Northwind Bluestone Silverpine Redcliff Oakridge Harbor Ironleaf Brightwater "
    "Stonebridge Clearfield Maplewood Copperline Greenhollow Westmark Eastgate "
    "Highmoor Lakeshore Sunvale Riverbend Frostpeak Goldcrest Ambergate Blackwell "
    "Cedarview Driftwood Elmstead Fairhaven Glenford Hollowbrook Juniper Kestrel "
    "Larkspur Meadowlark Nettlefield Orchard Pinecrest Quarrystone Rosewood Saltmarsh "
    "Thornbury Upland Valemont Willowby Yarrow Zephyr Alder Birchfield Coldbrook "
    "Dunmore Evergreen Foxglove Granite Heathmoor Inkwell Jasper Kingsley Lindenhall "
    "Marlow Newhaven Oldcastle Pebblebrook Ravenscroft Seabright Tidewater Umber "
    "Vantage Whitfield Brackenridge Crestline Deepwell"
).split()

ACCOUNT_SECOND = (
    "Analytics Logistics Health Foods Energy Freight Insurance Systems Retail "
    "Manufacturing Labs Media Pharma Finance Partners Holdings Robotics Telecom "
    "Outfitters Builders Capital Mobility Networks Materials Hospitality Textiles "
    "Biotech Components Services Works"
).split()

FIRST_NAMES = (
    "Avery Blake Casey Dana Elliot Finley Gray Harper Indra Jules Kai Logan Marin "
    "Noor Oakley Parker Quinn Reese Sasha Tatum Umi Vesna Wren Xavi Yael Zora Anika "
    "Bruno Celine Darius Esme Felix Greta Hugo Ilse Jonas Kira Lior Mateo Nadia Otto "
    "Priya Rafael Selma Tobias Ulla Viktor Wanda"
).split()

LAST_NAMES = (
    "Ashdown Bramley Carrow Dellafield Eastwick Farrant Galloway Hartwell Ivers "
    "Jessup Kellaway Lockhart Marchbank Nethercott Ormsby Pendrell Quartermain Radley "
    "Stanmore Tolland Underhill Verity Wexford Yardley Ambrose Blackmore Caddell "
    "Drummond Ellerby Fenwick Goring Halloran Inglewood Jardine Kirkwall Lindqvist"
).split()

LEAD_SOURCES = ("Inbound Outbound Partner Event Referral").split()

TITLES = {
    "economic": ["CFO", "VP Finance", "COO", "CIO", "Managing Director"],
    "user": [
        "Operations Manager",
        "Head of Sales Operations",
        "Team Lead",
        "Director of Operations",
        "Customer Service Manager",
    ],
    "technical": [
        "IT Architect",
        "Head of Security",
        "Data Engineer",
        "IT Manager",
        "Solutions Architect",
    ],
    "coach": [
        "Project Lead",
        "Director of Analytics",
        "Program Manager",
        "Head of Transformation",
        "Business Analyst",
    ],
}

PRODUCTS = [
    "Core Platform",
    "Analytics Suite",
    "Data Connectors",
    "Workflow Automation",
    "Premium Support",
]

DEAL_KINDS = ["new business", "expansion", "upgrade"]


NEXT_STEPS = {
    "Qualify": [
        "Book discovery call",
        "Send intro deck and case studies",
        "Confirm meeting with the project lead",
    ],
    "Discover": [
        "Run discovery workshop",
        "Map current process with operations",
        "Agree success metrics",
    ],
    "Propose": [
        "Present proposal",
        "Send pricing options",
        "Demo to the wider team",
    ],
    "Negotiate": [
        "Review redlines with legal",
        "Agree discount and payment terms",
        "Answer procurement questionnaire",
    ],
    "Commit": [
        "Collect signature",
        "Send order form for signature",
        "Confirm PO number",
    ],
    "Closed Won": ["Hand over to onboarding", "Schedule kick-off"],
    "Closed Lost": ["Revisit next fiscal year", "Send loss survey"],
}

# Evidence a rep writes next to an answer, by status.
EVIDENCE = {
    "confirmed": [
        "Heard it directly in the meeting",
        "Confirmed in writing by email",
        "Agreed in the workshop notes",
        "Stated by the sponsor on the call",
    ],
    "assumed": [
        "Our reading of the situation, not yet verified",
        "Mentioned in passing, to be checked",
        "Likely, based on similar accounts",
    ],
    "risk": [
        "Customer raised a concern",
        "Contradicted in the last meeting",
        "Blocked pending internal review",
    ],
}
